"""What pre-training learnt, shown to a user: the map of the folder, the conflict matrix, the fit check, the report.

Everything here reads a finished (or running) pre-training run folder and never changes its checkpoints.
Pictures are drawn without a plotting library (Pillow for the map's PNG, SVG text for the report), so the
engine stays free of matplotlib and Qt.
"""
