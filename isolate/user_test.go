package isolate

import "testing"

// The dyno's passwd and group keep the host's entries but any that would
// take the dyno user's name or ids, and end with the dyno user's.
func TestUserFiles(t *testing.T) {
	t.Parallel()
	passwd := "root:x:0:0:root:/root:/bin/bash\nu12345:x:1:1::/home/u:/bin/sh\nclash:x:12345:100::/:/bin/sh\n\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"
	group := "root:x:0:\ndyno:x:999:\nother:x:12345:\nnogroup:x:65534:\n"
	p, g := userFiles([]byte(passwd), []byte(group), "/bin/bash")
	wantP := "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nu12345:x:12345:12345:u12345:/app:/bin/bash\n"
	wantG := "root:x:0:\nnogroup:x:65534:\ndyno:x:12345:\n"
	if string(p) != wantP {
		t.Errorf("passwd:\n%s\nwant:\n%s", p, wantP)
	}
	if string(g) != wantG {
		t.Errorf("group:\n%s\nwant:\n%s", g, wantG)
	}
}
