"""Reading scans (SimpleITK), writing masks, indexing folders and caching slices."""
