"""A plugin that fails at import."""

import rnnkit_no_such_module_for_tests  # noqa: F401
