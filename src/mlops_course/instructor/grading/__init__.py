"""nbgrader for the course: derived courses, releases, fixtures, and class grading.

- :mod:`.courses`: the one nbgrader wrapper, and throw-away courses derived from
  ``grading/nbgrader_config.py`` (the one place for nbgrader settings).
- :mod:`.release`: what a release holds; submissions filled from the solution or a fixture.
- :mod:`.fixtures`: the wrong-answer fixtures of ``grading/fixtures/``.
- :mod:`.gradebook`: scores read from nbgrader's gradebook.
- Class grading (``mlops-course grade``), step by step: :mod:`.classgrade` runs the life cycle
  (assign, collect, run, check, feedback) with :mod:`.submissions`, :mod:`.sandbox` (the
  student's kernel), :mod:`.judge` (every hidden test, outside that kernel) with its
  :mod:`.channel` to the kernel, :mod:`.hooks` (feedback without tracebacks) and
  :mod:`.summary` (grades.csv, summary.html).
- :mod:`.attacks`: submissions that attack the grader, for the tests that prove they earn
  nothing.
"""
