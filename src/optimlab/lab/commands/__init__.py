"""What a user calls: the ``optimlab`` command line (cli.py parses, commands.py acts) and
the same jobs from Python (api.py: ``compare``; benchmark.py: ``benchmark``)."""
