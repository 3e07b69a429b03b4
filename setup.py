"""Only for the optional C fast path of the parser; everything else is in pyproject.toml.

``optional=True``: with no C compiler or no Python headers the build warns and installs the pure-Python
package, which gives the same frames (asterisk_ami.protocol picks whichever is there).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("asterisk_ami._speedups", ["asterisk_ami/_speedups.c"], optional=True)])
