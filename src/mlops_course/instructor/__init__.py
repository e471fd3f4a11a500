"""The instructor and CI tools: what ``mlops-course <command>`` runs.

- :mod:`~mlops_course.instructor.cli`: the command line (a thin layer over the modules below).
- :mod:`~mlops_course.instructor.kernel`: the course's Jupyter kernel.
- :mod:`~mlops_course.instructor.execute`: every solution notebook run headless (``make course``).
- :mod:`~mlops_course.instructor.report`: the execution report and benchmark.
- :mod:`~mlops_course.instructor.estimate`: each notebook's estimated minutes, by one rule.
- :mod:`~mlops_course.instructor.screenshots`: the MLflow UI pictures notebooks show, taken on
  their own executed stores.
- :mod:`~mlops_course.instructor.grading`: nbgrader courses, releases, fixtures and class
  grading in a sandbox.
- :mod:`~mlops_course.instructor.classroom`: the class tracking server with accounts.
"""
