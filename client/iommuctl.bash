# bash completion for iommuctl: verbs and options, and group numbers and PCI addresses asked from
# the running daemon (the one the command line names with --socket or --host), so that only groups
# and devices that exist are offered. A daemon that does not answer within 2 s offers nothing.

# The options of the words typed so far that choose the daemon.
_iommuctl_connection() {
        local i
        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                --socket | --host | --ca | --cert | --key)
                        printf '%s\n' "${words[i]}" "${words[i + 1]}"
                        ((i++))
                        ;;
                esac
        done
}

# Values of one JSON key in iommuctl --json output, e.g. "id" of every group.
_iommuctl_ask() {
        local what=$1 key=$2
        local -a connection
        mapfile -t connection < <(_iommuctl_connection)
        "${words[0]}" "${connection[@]}" --timeout 2 --json "$what" 2>/dev/null |
                sed -n "s/^ *\"$key\": *\"\\{0,1\\}\\([^\",]*\\).*/\\1/p"
}

_iommuctl() {
        local cur prev words cword
        _init_completion -n : || return

        local verbs='status units groups group devices device watch rescan set-type prepare release
                     block unblock plan apply policy'
        local options='--json --socket --host --ca --cert --key --timeout --snapshot --dry-run --force
                       --owner --help --version'

        case $prev in
        --socket | --ca | --cert | --key)
                _filedir
                return
                ;;
        --host | --timeout | --owner)
                return
                ;;
        esac

        if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
                return
        fi

        # The verb and how many of its arguments come before the word being completed.
        local i verb='' n_args=0
        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                --socket | --host | --ca | --cert | --key | --timeout | --owner) ((i++)) ;;
                -*) ;;
                *) if [[ -z $verb ]]; then verb=${words[i]}; else ((n_args++)); fi ;;
                esac
        done

        local candidates=''
        case $verb in
        '')
                candidates=$verbs
                ;;
        group | block | unblock)
                ((n_args == 0)) && candidates=$(_iommuctl_ask groups id)
                ;;
        set-type)
                if ((n_args == 0)); then
                        candidates=$(_iommuctl_ask groups id)
                elif ((n_args == 1)); then
                        candidates='identity DMA DMA-FQ auto'
                fi
                ;;
        prepare | release)
                ((n_args == 0)) && candidates="$(_iommuctl_ask groups id) $(_iommuctl_ask devices address)"
                ;;
        device)
                ((n_args == 0)) && candidates=$(_iommuctl_ask devices address)
                ;;
        policy)
                if ((n_args == 0)); then
                        candidates='check'
                else
                        _filedir conf
                        return
                fi
                ;;
        esac
        mapfile -t COMPREPLY < <(compgen -W "$candidates" -- "$cur")
        __ltrim_colon_completions "$cur"
}

complete -F _iommuctl iommuctl
