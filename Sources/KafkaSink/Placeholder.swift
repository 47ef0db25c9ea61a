// Placeholder until the KafkaSink issue lands.
