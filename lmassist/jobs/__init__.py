"""Tasks over many inputs: folders, globs and path lists in; mirrored trees or JSON Lines out;
resumable (a memo of finished chunks, a manifest of finished outputs), with one progress bar.

Layer 4: it runs tasks (:mod:`lmassist.tasks`) and knows nothing of the command line, which calls
:func:`lmassist.jobs.runner.run_job`.
"""
