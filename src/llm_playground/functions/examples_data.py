"""The course's public example files shipped with the package (see `llmp call`)."""

EXAMPLE_FILES = ("functions_definition.json", "function_calling_tests.json", "function_calling_expected.json")
