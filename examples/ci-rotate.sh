#!/usr/bin/env bash
# Rotate a CI user's access key and store the new key in GitHub Actions secrets.
#
# Steps (the script exits with the status of the first keyrot command that fails):
#   1. find the user's one active key (or take KEYROT_KEY_ID);
#   2. create a new key and prove it works, with keyrot rotate --keep-old --delete-inactive-key
#      --output json, which deletes the inactive key left by the previous run to make room;
#   3. hand the new key to the secret store with `gh secret set` (only when KEYROT_HANDOFF=gh);
#   4. deactivate the old key. It stays until the next run deletes it, so `keyrot activate` can
#      bring it back if the new key breaks something.
# The old key stays active until the new key is in the secret store. If the hand-off fails before
# anything is stored, the new key is deactivated again, the old key keeps working, and the script
# exits 6. If it fails after the key ID is stored, the store contains the new key ID beside the old
# secret: both keys stay active, and the script exits 6 with the commands that undo the change.
#
# Variables:
#   KEYROT_USER         IAM user whose key is rotated (required)
#   KEYROT_KEY_ID       the key to replace [default: the user's only active key]
#   KEYROT_HANDOFF      "gh" to store the new key with the GitHub CLI; unset to rehearse, which
#                       is allowed only against a test endpoint (AWS_ENDPOINT_URL)
#   KEYROT_ID_NAME      secret that receives the access key ID [default: AWS_ACCESS_KEY_ID]
#   KEYROT_SECRET_NAME  secret that receives the secret key [default: AWS_SECRET_ACCESS_KEY]
#   KEYROT              the keyrot command [default: keyrot]
# gh reads GH_TOKEN and GH_REPO from the environment. The secret access key never appears on a
# command line or in the log: it goes from keyrot's JSON document to gh through a 0600 file.
#
# Exit status: keyrot's own (0 done, 1 AWS failed, 2 bad input, 3 not found, 4 credentials or
# access denied, 5 refused with nothing changed, 6 partly done), and 2 for a missing variable.
set -euo pipefail

keyrot=${KEYROT:-keyrot}
user=${KEYROT_USER:-}
handoff=${KEYROT_HANDOFF:-}
id_name=${KEYROT_ID_NAME:-AWS_ACCESS_KEY_ID}
secret_name=${KEYROT_SECRET_NAME:-AWS_SECRET_ACCESS_KEY}

note() { echo "ci-rotate: $*" >&2; }
fail() { local status=$1; shift; note "error: $*"; exit "$status"; }

check_settings() {
    [ -n "$user" ] || fail 2 "KEYROT_USER is not set; set it to the IAM user whose key to rotate"
    command -v jq >/dev/null || fail 2 "jq is not installed; install it (apt-get install jq)"
    case $handoff in
        gh)
            command -v gh >/dev/null ||
                fail 2 "KEYROT_HANDOFF=gh but the GitHub CLI (gh) is not installed" ;;
        "")
            [ -n "${AWS_ENDPOINT_URL:-}" ] ||
                fail 2 "KEYROT_HANDOFF is not set, so the new secret would be lost;" \
                    "set KEYROT_HANDOFF=gh, or set AWS_ENDPOINT_URL to a test endpoint" \
                    "to rehearse" ;;
        *)
            fail 2 "KEYROT_HANDOFF=$handoff is not supported;" \
                "use gh, or leave it unset to rehearse" ;;
    esac
}

# Print the user's only active key ID, from `keyrot list --output json`.
active_key_id() {
    local listing key_ids count
    listing=$("$keyrot" list --user "$user" --output json --quiet) || exit
    key_ids=$(jq -r '.AccessKeys[] | select(.Status == "Active") | .AccessKeyId' <<<"$listing")
    count=$(grep -c . <<<"$key_ids" || true)
    [ "$count" -eq 1 ] ||
        fail 5 "$user has $count active access keys, not 1; set KEYROT_KEY_ID to the one to replace"
    echo "$key_ids"
}

hand_off() {
    local new_key_id=$1 secret_file=$2
    if [ -z "$handoff" ]; then
        note "KEYROT_HANDOFF is not set: rehearsal, $new_key_id was not stored anywhere"
        return 0
    fi
    # Status 1: nothing was stored. Status 2: the store contains the new key ID but not its secret.
    gh secret set "$id_name" --body "$new_key_id" >&2 || return 1
    gh secret set "$secret_name" <"$secret_file" >&2 || return 2
}

undo_new_key() {
    local new_key_id=$1 old_key_id=$2
    if "$keyrot" deactivate --user "$user" "$new_key_id" --quiet --output json >/dev/null; then
        fail 6 "storing the new key failed, so the new key $new_key_id was deactivated again;" \
            "the old key $old_key_id is still active and still in the secret store." \
            "The next run deletes $new_key_id and tries again"
    fi
    fail 6 "storing the new key failed and deactivating it failed too: $new_key_id is active" \
        "but stored nowhere. Run: $keyrot deactivate --user $user $new_key_id"
}

# Storing the secret failed after the key ID was stored. Deactivating either key could break
# whatever the store is made to hold next, so both stay active until a person puts it right.
half_stored() {
    local new_key_id=$1 old_key_id=$2
    fail 6 "storing the new key failed half way: $id_name now holds the new key ID" \
        "$new_key_id, while $secret_name still holds the secret of the old key $old_key_id" \
        "(or is missing), so the stored pair does not work. Both keys stay active. The new" \
        "secret was never logged and is gone, so undo, then run this script again: gh secret" \
        "set $id_name --body $old_key_id && $keyrot deactivate --user $user $new_key_id" \
        "(the next run deletes $new_key_id)"
}

main() {
    check_settings
    local old_key_id=${KEYROT_KEY_ID:-}
    if [ -z "$old_key_id" ]; then
        old_key_id=$(active_key_id)
    fi

    umask 077
    workdir=$(mktemp -d)
    trap 'rm -rf "$workdir"' EXIT
    note "rotating $old_key_id of $user"
    "$keyrot" rotate --user "$user" "$old_key_id" --keep-old --delete-inactive-key \
        --output json --quiet >"$workdir/rotated.json" || exit
    local new_key_id
    new_key_id=$(jq -er '.NewAccessKey.AccessKeyId' "$workdir/rotated.json")
    jq -er '.NewAccessKey.SecretAccessKey' "$workdir/rotated.json" >"$workdir/secret"

    local stored=0
    hand_off "$new_key_id" "$workdir/secret" || stored=$?
    case $stored in
        0) ;;
        1) undo_new_key "$new_key_id" "$old_key_id" ;;
        *) half_stored "$new_key_id" "$old_key_id" ;;
    esac

    if ! "$keyrot" deactivate --user "$user" "$old_key_id" --quiet --output json >/dev/null; then
        fail 6 "the new key $new_key_id is stored, but the old key $old_key_id is still active." \
            "Run: $keyrot deactivate --user $user $old_key_id"
    fi
    note "replaced $old_key_id with $new_key_id;" \
        "$old_key_id is inactive until the next run deletes it"
}

main "$@"
