#!/bin/bash
# git push over a path and over SSH (a real sshd on 127.0.0.1:2299, a key
# added with dyno keys:add), examples/go-hello and examples/node-hello,
# through bin/dyno (make build first). Run as root: sshd needs /run/sshd
# and logs in as root here. Uses /tmp/mp.
set -e
DYNO=${DYNO:-$(cd "$(dirname "$0")/../.." && pwd)/bin/dyno}
EXAMPLES=$(cd "$(dirname "$0")/../.." && pwd)/examples
W=/tmp/mp; rm -rf $W; mkdir -p $W/ssh $W/user
export DYNO_HOME=$W/home HOME=$W/user GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Ann GIT_AUTHOR_EMAIL=ann@example.com GIT_COMMITTER_NAME=Ann GIT_COMMITTER_EMAIL=ann@example.com
unset GIT_SSL_CAINFO
ssh-keygen -q -t ed25519 -N '' -f $W/ssh/hostkey; ssh-keygen -q -t ed25519 -N '' -C ann@laptop -f $W/ssh/ann
$DYNO keys:add $W/ssh/ann.pub
printf 'ListenAddress 127.0.0.1:2299\nHostKey %s\nAuthorizedKeysFile %s\nPasswordAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPidFile %s\n' $W/ssh/hostkey $W/user/.ssh/authorized_keys $W/ssh/pid > $W/ssh/conf
mkdir -p /run/sshd; /usr/sbin/sshd -f $W/ssh/conf
export GIT_SSH_COMMAND="ssh -i $W/ssh/ann -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes -o LogLevel=ERROR"
for ex in go-hello node-hello; do
  for via in path ssh; do
    app=$ex-$via; src=$W/$app; mkdir -p $src; cp -r $EXAMPLES/$ex/. $src; cd $src
    git init -q -b main; git add -A; git commit -qm $ex
    $DYNO apps:create $app > /dev/null
    [ $via = ssh ] && git remote set-url dyno ssh://root@127.0.0.1:2299/$app.git
    echo "=== $app: git push dyno main ($(git remote get-url dyno))"
    start=$(date +%s.%N); git push dyno main > $W/$app.out 2>&1 && rc=0 || rc=$?; end=$(date +%s.%N)
    grep -E "detected|Released|deployed|Verifying|new branch" $W/$app.out
    printf 'rc=%s  %.1f s\n' $rc $(echo "$end - $start" | bc)
    $DYNO releases | head -2 | tail -1
  done
done
kill $(cat $W/ssh/pid)
