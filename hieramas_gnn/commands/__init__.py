"""The `hieramas` subcommands, one module each (`add_parser(subparsers)` + its handler);
`common.py` holds what they share."""
