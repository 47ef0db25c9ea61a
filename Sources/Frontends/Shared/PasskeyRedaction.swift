/// The form of a passkey that may appear in logs: its first four characters
/// only, so a log line never hands out a working credential.
@usableFromInline
func redactedPasskey(_ passkey: Substring?) -> String {
  guard let passkey else { return "-" }
  return String(passkey.prefix(4)) + "…"
}
