import sys

from mlops_course.instructor.cli import main

sys.exit(main())
