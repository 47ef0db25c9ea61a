// Placeholder until the Frontends issue lands.
