"""The study report: the answer on one page, as one self-contained HTML file.

``ocl report`` (and ``ocl evaluate``, which adds its held-out test result) write it. The page
reads top to bottom as a person asks: what is the optimal cut-off layer and strategy, and how
sure (validation AUROC with its 95% interval, the confidence set, the answer in one sentence);
how the score changes with depth (one curve per strategy and weights, intervals as bands, the
dictionary's probe AUROC and LogME beside them, dense blocks shaded); feature extraction against
fine-tuning and transfer against scratch, layer by layer; how the search went; what the data
was; and the exact command that reproduces the study.

Data first, picture second, as ``optuna.visualization`` does: :func:`report_data` gathers plain
values (``_data.py``, what tests check); one module draws each figure (``_profile.py``,
``_history.py``, ``_roc.py``, sharing ``_plotting.py``); :func:`render_html` lays them out with the
stylesheet and script in ``assets/`` (``_html.py``); :func:`write_study_report` does all of it.
plotly.js is embedded once, so the file opens offline; every plot has a fixed height.

Example:
    >>> study = optuna.load_study(study_name="nih-cxr14-sample-any-224px", storage=url)
    >>> write_study_report(study, url, Path("studies/reports/answer.html"))
"""

from sweep.report._data import Comparison, ComparisonRow, ProfileCurve, ReportData, report_data, reproduce_command, study_file
from sweep.report._html import render_html, write_study_report

__all__ = [
    "Comparison",
    "ComparisonRow",
    "ProfileCurve",
    "ReportData",
    "render_html",
    "report_data",
    "reproduce_command",
    "study_file",
    "write_study_report",
]
