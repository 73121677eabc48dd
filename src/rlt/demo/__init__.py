"""The demo: the paper's claim in miniature on the toy world, as a pipeline of ``rlt`` commands.

* :mod:`rlt.demo.stages`: the stages of one seed (world → students, teacher → RL → explanations →
  students → evaluation), each the command a user would run;
* :mod:`rlt.demo.pipeline`: runs them in their own processes, independent ones side by side, and
  resumes a killed demo at its first unfinished stage;
* :mod:`rlt.demo.report`: reads the stages' outputs back into a summary, a table and plots.

``rlt demo`` (:mod:`rlt.commands.demo`) composes them. Nothing here imports a command.
"""
