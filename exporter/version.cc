// The exporter library; sources land here as the exporter is built.
