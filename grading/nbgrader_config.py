# nbgrader configuration of the course: the one place for every nbgrader setting.
#
# Run nbgrader commands from this folder:
#
#     cd grading && nbgrader generate_assignment 01_mlops_paradigm --force
#
# Sources are the instructor notebooks in ../solutions, the student release goes to
# ../notebooks; everything nbgrader writes while grading (gradebook, submitted, autograded,
# feedback) stays in grading/work/, which git ignores.
#
# The course's tools derive throw-away courses from this file (the grading tests, class
# grading and its workers: mlops_course.instructor.grading.courses.make_course). The
# nbgrader_config.py of such a course names its own folder in MLOPS_COURSE_NBGRADER_ROOT and
# then loads this file, which gives it nbgrader's default folder names under that root.
# (A variable, because traitlets loads this file into a fresh Config: it cannot see what the
# loading file set.)
import json
import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

derived_root = os.environ.get("MLOPS_COURSE_NBGRADER_ROOT")
if derived_root:
    # A derived course: source/, release/, submitted/, autograded/, feedback/ under its root.
    c.CourseDirectory.root = derived_root
    c.CourseDirectory.db_url = f"sqlite:///{Path(derived_root) / 'gradebook.db'}"
else:
    repo = Path(__file__).resolve().parent.parent
    work = Path("grading") / "work"
    (repo / work).mkdir(parents=True, exist_ok=True)  # the gradebook needs its folder
    c.CourseDirectory.root = str(repo)
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "notebooks"
    c.CourseDirectory.submitted_directory = str(work / "submitted")
    c.CourseDirectory.autograded_directory = str(work / "autograded")
    c.CourseDirectory.feedback_directory = str(work / "feedback")
    c.CourseDirectory.solution_directory = str(work / "solution")
    c.CourseDirectory.db_url = f"sqlite:///{repo / work / 'gradebook.db'}"

c.CourseDirectory.course_id = "mlops-course"
# Only notebooks are released and graded: a notebook run leaves its MLflow store, server logs
# and the files an exercise writes (some of them answers) next to it.
# (nbgrader converts the notebooks itself and copies every other file not ignored: ignore all.)
c.CourseDirectory.ignore = ["*"]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.Execute.timeout = 600
# Hidden tests must never reach students, not even through feedback.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
]

# Class grading (`mlops-course grade`) passes its sandbox policy in this variable
# (mlops_course.instructor.grading.sandbox.POLICY_VARIABLE). Then every kernel starts in the
# sandbox, every test cell's hidden part is judged outside the kernel by the trusted judge
# (mlops_course.instructor.grading.judge.TrustedExecute instead of nbgrader's Execute), and
# feedback loses its tracebacks too (they may show hidden-test code).
_policy = os.environ.get("MLOPS_COURSE_SANDBOX")
if _policy:
    c.Execute.timeout = int(json.loads(_policy)["timeout_seconds"])
    c.Execute.interrupt_on_timeout = True
    c.Execute.kernel_manager_class = (
        "mlops_course.instructor.grading.sandbox.SandboxedKernelManager"
    )
    c.Autograde.autograde_preprocessors = [
        "mlops_course.instructor.grading.judge.TrustedExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    c.GenerateFeedback.preprocessors = [
        *c.GenerateFeedback.preprocessors,
        "mlops_course.instructor.grading.hooks.StripTracebacks",
    ]
