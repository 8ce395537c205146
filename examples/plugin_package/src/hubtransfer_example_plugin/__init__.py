"""An example hubtransfer plugin: backbone specs published through an entry point."""
