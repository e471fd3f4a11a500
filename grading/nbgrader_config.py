# nbgrader configuration of the course. Run nbgrader commands from this folder:
#
#     cd grading && nbgrader generate_assignment 01_mlops_paradigm --force
#
# Sources are the instructor notebooks in ../solutions, the student release goes to
# ../notebooks; everything nbgrader writes while grading (gradebook, submitted,
# autograded, feedback) stays in grading/work/, which git ignores.
from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

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
# Only notebooks are released and graded: a notebook run leaves its MLflow store, server logs
# and the files an exercise writes (some of them answers) next to it.
# (nbgrader converts the notebooks itself and copies every other file not ignored: ignore all.)
c.CourseDirectory.ignore = ["*"]
c.CourseDirectory.course_id = "mlops-course"
# Hidden tests must never reach students, not even through feedback.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.Execute.timeout = 600
