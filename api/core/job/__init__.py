"""The job: its steps (steps.py), one run executed (execution.py), the runner that starts and stops runs
(runner.py), cancel and timeout (control.py), and the files a run leaves (files.py)."""
