"""`fangpin bench`: the five load scenarios on the real stack, each beside the raw limits.

One module per scenario (s1 … s5), one for the raw limits measured in the same run
(limits), the stack they share (stack: databases, topics, worker and API processes), the
load generators (load), synthetic data (data) and the report (report). `run` ties them.
"""
