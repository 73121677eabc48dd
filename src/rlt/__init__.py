"""rlt: Reinforcement-Learned Teachers (Cetin, Zhao, Tang 2025), from a CPU laptop to a GPU cluster.

Components (no command-line knowledge): :mod:`rlt.formats` (tags, prompts, exact token spans),
:mod:`rlt.data` (loading and normalising datasets), :mod:`rlt.logprobs` (span log-probs in fp32),
:mod:`rlt.reward` (the RLT reward), :mod:`rlt.modeling` (loading models), :mod:`rlt.toy` (an
offline world of tiny models and a synthetic task). Commands live in :mod:`rlt.commands`.
"""

__version__ = "0.1.0"
