"""The only code that touches the web framework and sockets."""
