# bash completion for iommuctl: verbs and options, the values of --color, --type, --viable and
# --state, and group numbers, PCI addresses and drivers asked from the running daemon (the one the
# command line names with --socket or --host, else $IOMMUD_SOCKET's), so that only groups, devices
# and drivers that exist are offered. A daemon that does not answer within 2 s offers nothing.

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

# Options whose value is the next word (or follows '=').
_iommuctl_valued=' --socket --host --ca --cert --key --timeout --owner --group --type --driver --vendor --class --state -n '

_iommuctl() {
        local cur prev words cword split
        _init_completion -s -n : || return

        local verbs='status units groups group devices device tree graph watch rescan set-type prepare
                     release block unblock plan apply policy history'
        local options='--json --no-legend --no-pager --color= --socket --host --ca --cert --key --timeout
                       --type --viable --viable= --driver --vendor --class --state --snapshot --dry-run
                       --force --owner -n --group --help --version'

        local values=''
        case $prev in
        --socket | --ca | --cert | --key)
                _filedir
                return
                ;;
        --host | --timeout | --owner | --vendor | --class | -n)
                return
                ;;
        # Optional values: only after '=' ("--color always" would make "always" the verb).
        --color) [[ $split == true ]] && values='auto always never' ;;
        --viable) [[ $split == true ]] && values='yes no' ;;
        --type) values='identity DMA DMA-FQ blocked unmanaged' ;;
        --state) values='host vfio_ready in_use blocked transitioning failed' ;;
        --driver) values="none $(_iommuctl_ask devices driver | grep -vx null | sort -u)" ;;
        --group) values=$(_iommuctl_ask groups id) ;;
        esac
        if [[ -n $values ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
                return
        fi
        # An option that takes no value was given one: nothing to offer.
        [[ $split == true ]] && return

        if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
                [[ ${COMPREPLY[*]} == *= ]] && compopt -o nospace 2>/dev/null
                return
        fi

        # The verb and how many of its arguments come before the word being completed; after
        # "--" every word is an argument.
        local i verb='' n_args=0 only_args=''
        for ((i = 1; i < cword; i++)); do
                if [[ -z $only_args && ${words[i]} == -- ]]; then
                        only_args=1
                elif [[ -z $only_args && $_iommuctl_valued == *" ${words[i]} "* ]]; then
                        ((i++))
                elif [[ -z $only_args && ${words[i]} == -[!0-9]* ]]; then
                        :
                elif [[ -z $verb ]]; then
                        verb=${words[i]}
                else
                        ((n_args++))
                fi
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
