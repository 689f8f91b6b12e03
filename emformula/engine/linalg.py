"""Linear algebra on information-like matrices that must not depend on units."""

from __future__ import annotations

import numpy as np

__all__ = ["equilibration", "solve_square"]

try:
    # The generalised ufunc behind numpy.linalg.solve for one right-hand side
    # (LAPACK's gesv). On the small systems of every M-step (a component's
    # p x p normal equations) numpy's checks and wrapping around it cost
    # as much as the solve; called directly it gives the same bits.
    from numpy.linalg import _umath_linalg

    _SOLVE1: object = _umath_linalg.solve1
except (ImportError, AttributeError):  # a numpy without it: the public function
    _SOLVE1 = None


def equilibration(matrix):
    """Symmetric diagonal scaling that makes ``matrix`` independent of units.

    Returns ``s`` such that ``s[:, None] * matrix * s[None, :]`` has a unit
    diagonal in absolute value: for an information matrix, its correlation
    form ``D^-1/2 I D^-1/2``. Rescaling a parameter (a covariate measured in
    dollars instead of thousands) multiplies a row and a column of the
    information by a constant, which changes its eigenvalues by as much but
    leaves the scaled matrix unchanged, so every rank or eigenvalue decision
    made on it, and its inverse, is invariant to units; a spread of column
    scales of more than ~1e5 otherwise puts the smallest eigenvalue of a
    perfectly regular information below any relative cut-off. For a
    positive definite matrix this scaling is within a factor of the size of
    the optimal one for the condition number (van der Sluis 1969).

    A zero diagonal entry (a parameter with no curvature of its own,
    possible where the matrix is indefinite) is scaled so that the largest
    entry of its row, among the other scaled entries, is 1; an all-zero row,
    and a non-finite diagonal entry, keep the scale 1.

    Parameters
    ----------
    matrix : ndarray (P, P)
        Symmetric.

    Returns
    -------
    ndarray (P,)
        Positive and finite.

    Examples
    --------
    >>> a = np.array([[4.0, 1e6], [1e6, 1e12]])
    >>> s = equilibration(a)
    >>> (s[:, None] * a * s[None, :]).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    matrix = np.asarray(matrix, dtype=float)
    diag = np.abs(matrix.diagonal())
    regular = (diag > 0) & (diag < np.inf)  # False for NaN too
    if regular.all():  # the usual case, on every M-step: no more work
        return 1.0 / np.sqrt(diag)
    scale = np.ones(diag.size)
    scale[regular] = 1.0 / np.sqrt(diag[regular])
    for j in np.flatnonzero(diag == 0):
        row = np.abs(matrix[j, regular]) * scale[regular]
        top = row.max(initial=0.0)
        # A subnormal top would make the scale overflow: such a row keeps 1,
        # as an all-zero row does.
        if np.finfo(float).tiny <= top < np.inf:
            scale[j] = 1.0 / top
    return scale


def solve_square(matrix, rhs):
    """``matrix^-1 rhs`` for a square float ``matrix`` and a vector ``rhs``:
    :func:`numpy.linalg.solve`, bit for bit, with less overhead.

    Raises :class:`numpy.linalg.LinAlgError` where the matrix is singular,
    as numpy does.

    Examples
    --------
    >>> solve_square(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([1.0, 1.0])).tolist()
    [0.5, 0.25]
    """
    if _SOLVE1 is None:
        return np.linalg.solve(matrix, rhs)
    # numpy signals a singular matrix as an invalid floating-point operation.
    with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
        try:
            return _SOLVE1(matrix, rhs, signature="dd->d")
        except FloatingPointError:
            raise np.linalg.LinAlgError("Singular matrix") from None
