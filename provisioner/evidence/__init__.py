"""`provision evidence`: run the sources that judge the promises' controls (sources.py), keep
each run as a file (store.py), and build the report from the runs (compliance/evidence.py)."""
