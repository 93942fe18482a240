"""GCL Studio's napari plugin: the manifest (``napari.yaml``), reader, writer, sample data and panels."""
