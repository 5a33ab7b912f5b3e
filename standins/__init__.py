"""Local stand-ins for the outside world: the AWS emulator and the offline model.

The product packages never import this one; the command line and the tests
start these servers and point the settings at them.
"""
