// Placeholder until the FileSink work lands.
