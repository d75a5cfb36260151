"""`completion bash|zsh|fish`: a script derived from the command line parser, so it never lists a command
or an option that does not exist (a static script: nothing is imported or run on each TAB)."""

import argparse
import shlex

from app.cli.parser import Command
from ledger.settings import Settings


def register(command: Command) -> None:
    """completion (listed last: it completes every command registered before or after it)."""
    shell = command(
        "completion",
        _completion,
        'print a shell completion script: eval "$(consent-ledger completion bash)" (or zsh; for fish: '
        "consent-ledger completion fish | source)",
    )
    shell.add_argument("shell", choices=["bash", "zsh", "fish"])
    shell.set_defaults(parser=command.root)


def _completion(args: argparse.Namespace, settings: Settings) -> int:
    scripts = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}
    print(scripts[args.shell](args.parser, args.parser.prog), end="")
    return 0


def zsh_script(parser: argparse.ArgumentParser, prog: str) -> str:
    """The bash script, run by zsh's own bash-completion emulation (bashcompinit)."""
    return (
        f"# zsh completion for {prog}, through bashcompinit\n"
        "autoload -U +X compinit && compinit\n"
        "autoload -U +X bashcompinit && bashcompinit\n"
    ) + bash_script(parser, prog)


def fish_script(parser: argparse.ArgumentParser, prog: str) -> str:
    """The script `consent-ledger completion fish | source` loads: commands at the first word, then
    each command's long options and subcommands."""
    words = _words(parser)
    lines = [
        f"# fish completion for {prog}",
        f"complete -c {prog} -l help -l version -n __fish_use_subcommand",
        f"complete -c {prog} -f -n __fish_use_subcommand -a {shlex.quote(' '.join(sorted(words)))}",
    ]
    for command, following in sorted(words.items()):
        seen = shlex.quote(f"__fish_seen_subcommand_from {command}")
        options = [word.removeprefix("--") for word in following if word.startswith("--")]
        actions = [word for word in following if not word.startswith("-")]
        if options:
            lines.append(f"complete -c {prog} -n {seen} " + " ".join(f"-l {o}" for o in options))
        if actions:
            lines.append(f"complete -c {prog} -f -n {seen} -a {shlex.quote(' '.join(actions))}")
    return "\n".join(lines) + "\n"


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
