def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits as [N, 64] raw pixel values (0..16) and their labels.

    scikit-learn ships them as one CSV file (64 pixels, then the label, per row),
    which ``load_digits()`` reads with ``np.loadtxt``. Importing sklearn.datasets
    takes ~0.8 s, more than the rest of a run's start-up together, so the file is
    read here directly; ``load_digits()`` remains the fallback should it move.
    """
    sklearn = importlib.util.find_spec("sklearn")  # finds the package, imports nothing
    if sklearn is not None and sklearn.submodule_search_locations:
        path = Path(sklearn.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data, digits.target
