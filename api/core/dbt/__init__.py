"""dbt, behind one small package: the environment it runs with (env.py), running a command (invoke.py), the
warm worker process (worker.py) and the API's handle on it (client.py), and what a failed command reports
(failures.py)."""
