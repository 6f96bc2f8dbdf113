"""The base class of errors that mean bad input from the user rather than a bug."""


class InputError(ValueError):
    """A malformed or missing input file (a list, a lexicon); the message names the file.

    Subclasses live next to the code that reads each kind of file; the command line reports
    every InputError in one line instead of a traceback.
    """
