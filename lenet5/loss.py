"""The paper's losses on RBF penalties (Section II.C) and cross-entropy for logits."""

import torch
import torch.nn.functional as F

# The paper leaves j unstated. A small j keeps the "rubbish class" e^-j from
# swamping the competition term; PAPER.md measured j = 0.1 training far
# faster than j = 1 in the first passes.
DEFAULT_J = 0.1


def y_d(penalties, target):
    """Mean RBF penalty of the correct class: the plain MSE criterion."""
    return penalties.gather(1, target[:, None]).mean()


def eq9(penalties, target, j=DEFAULT_J):
    """Equation (9): mean of y_D + log(exp(-j) + sum_i exp(-y_i)). Always >= 0."""
    rubbish = penalties.new_full((penalties.shape[0], 1), float(j))
    competition = torch.logsumexp(-torch.cat([penalties, rubbish], dim=1), dim=1)
    return (penalties.gather(1, target[:, None]).squeeze(1) + competition).mean()


def cross_entropy(logits, target):
    return F.cross_entropy(logits, target)


LOSSES = {"eq9": eq9, "yd": y_d, "ce": cross_entropy}
