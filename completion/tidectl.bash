# bash completion for tidectl: commands from `tidectl help`, each command's options from
# `tidectl help COMMAND` (so it follows the installed tidectl), workload names from
# `tidectl get workloads` for describe/delete/events, files for -f/--data/--spec/--plot.
_tidectl() {
    local cur prev cmd i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local tidectl=${COMP_WORDS[0]}
    local global=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket) global+=(--socket "${COMP_WORDS[i+1]}"); ((i++)) ;;
            --socket=*) global+=("${COMP_WORDS[i]}") ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $prev in
        -f|--filename|--data|--spec|--plot|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --task) COMPREPLY=($(compgen -W "scale-1h day-ahead" -- "$cur")); return ;;
        --policy) COMPREPLY=($(compgen -W "tide hpa static all" -- "$cur")); return ;;
        --model)
            COMPREPLY=($(compgen -W "$("$tidectl" help backtest 2>/dev/null | sed -n 's/^models://p') all" -- "$cur"))
            return ;;
    esac
    if [ -z "$cmd" ]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--socket --json --quiet --help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$("$tidectl" help 2>/dev/null | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}')" -- "$cur"))
        fi
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$("$tidectl" help "$cmd" 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u) --json --help" -- "$cur"))
        return
    fi
    case $cmd in
        describe|delete|events)
            COMPREPLY=($(compgen -W "$("$tidectl" "${global[@]}" get workloads 2>/dev/null | awk 'NR > 1 {print $1}')" -- "$cur")) ;;
        get) COMPREPLY=($(compgen -W "workloads" -- "$cur")) ;;
        help) COMPREPLY=($(compgen -W "$("$tidectl" help 2>/dev/null | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}')" -- "$cur")) ;;
    esac
}
complete -F _tidectl tidectl
