"""`completion bash`: a script derived from the command line parser, so it never lists a command or an
option that does not exist (a static script: nothing is imported or run on each TAB)."""

import argparse
import shlex

from app.cli.parser import Command
from ledger.settings import Settings


def register(command: Command) -> None:
    """completion (listed last: it completes every command registered before or after it)."""
    shell = command(
        "completion", _completion, 'print a shell completion script: eval "$(consent-ledger completion bash)"'
    )
    shell.add_argument("shell", choices=["bash"])
    shell.set_defaults(parser=command.root)


def _completion(args: argparse.Namespace, settings: Settings) -> int:
    print(bash_script(args.parser, args.parser.prog), end="")
    return 0


def bash_script(parser: argparse.ArgumentParser, prog: str) -> str:
    """The script `eval "$(consent-ledger completion bash)"` loads: commands first, then each
    command's options and subcommands, then file names."""
    words = _words(parser)
    cases = "\n".join(
        f"        {shlex.quote(command)}) words={shlex.quote(' '.join(options))} ;;"
        for command, options in sorted(words.items())
    )
    function = "_" + prog.replace("-", "_")
    return f"""# bash completion for {prog}
{function}() {{
    local current=${{COMP_WORDS[COMP_CWORD]}} words
    if [[ $COMP_CWORD -eq 1 ]]; then
        words={shlex.quote(" ".join(["--help", "--version", *sorted(words)]))}
    else
        case ${{COMP_WORDS[1]}} in
{cases}
        *) words="" ;;
        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$current"))
    if [[ ${{#COMPREPLY[@]}} -eq 0 && $current != -* ]]; then
        COMPREPLY=($(compgen -f -- "$current"))
    fi
}}
complete -o filenames -F {function} {prog}
"""


def _words(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Each command with the words that may follow it: its options and its own subcommands."""
    words: dict[str, list[str]] = {}
    for name, command in _subcommands(parser).items():
        options = [flag for action in command._actions for flag in action.option_strings]
        words[name] = [*options, *_subcommands(command)]
    return words


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    # argparse keeps its subparsers in a private action type; its public API has no way to list them.
    return {
        name: command
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, command in action.choices.items()
    }
