// Placeholder until the DeltaWire issue lands.
