"""The annotation-curve benchmark: a simulated annotator, the rows it is measured with, the report."""
