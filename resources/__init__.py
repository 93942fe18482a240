"""GCL Studio's data files (sample scans with their licences, icons), installed as the package ``gcl_resources``.

No code: being a package is what lets an installed wheel carry the files and ``importlib.resources`` find them.
"""
