# SPDX-License-Identifier: MIT
# The packaging tests: a package, so their conftest and helpers never shadow tests/it's.
