"""Retrieval QA with verbatim cited answers."""


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("qa")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"
