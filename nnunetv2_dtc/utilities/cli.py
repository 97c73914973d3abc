"""What the package's commands share: exit statuses, the error line they end with, and lists cut to a readable
length in error messages."""
import sys
from typing import NoReturn, Sequence

EXIT_STATUS_FAILED = 1
EXIT_STATUS_BAD_INPUT = 2  # argparse's status for unusable arguments
EXIT_STATUS_INTERRUPTED = 130  # the shell's status after Ctrl-C
MAX_ITEMS_SHOWN = 10


def exit_with_error(command: str, error: BaseException, status: int = EXIT_STATUS_BAD_INPUT) -> NoReturn:
    """Ends a command the way argparse does: `<command>: error: <message>` on stderr, then the exit status."""
    print(f'{command}: error: {error}', file=sys.stderr)
    sys.exit(status)


def shown(items: Sequence[str], noun: str = 'case(s)', limit: int = MAX_ITEMS_SHOWN) -> str:
    """'3 case(s): a, b, c', with ' ...' after the first `limit` items."""
    listed = ', '.join(items[:limit])
    return f'{len(items)} {noun}: {listed}' + (' ...' if len(items) > limit else '')
