package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/spf13/cobra"
)

func addDomainsCommands(root *cobra.Command) {
	addTopic(root, newDomainsCommand, newDomainsAddCommand, newDomainsRemoveCommand, newDomainsClearCommand)
}

// routerSettings is dyno.toml's [router] table of the app's home.
func routerSettings(a *app.App) (daemon.RouterSettings, error) {
	s, err := daemon.LoadSettings(a.Home().SizesFile())
	return s.Router, err
}

func newDomainsCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "List the app's default hostname and custom domains",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, s, err := openAppState(name)
			if err != nil {
				return err
			}
			r, err := routerSettings(a)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				list, err := daemon.DomainsJSON(a, r.Domain)
				if err != nil {
					return err
				}
				return writeJSON(out, list)
			}
			c := newColors(cmd)
			// Heroku's shape: the default domain, then the custom ones.
			fmt.Fprintln(out, c.header(a.Name+" Heroku Domain"))
			fmt.Fprintln(out, app.DefaultHost(a.Name, r.Domain))
			if len(s.Domains) == 0 {
				return nil
			}
			fmt.Fprintln(out)
			fmt.Fprintln(out, c.header(a.Name+" Custom Domains"))
			rows := [][]string{{"Domain Name", "DNS Record Type", "DNS Target", "SNI Endpoint"}}
			for _, d := range s.Domains {
				sni := ""
				for _, cert := range s.Certs {
					if cert.Domain == d {
						sni = shortFingerprint(cert.Fingerprint)
					}
				}
				rows = append(rows, []string{d, dnsRecordType(d), app.DefaultHost(a.Name, r.Domain), sni})
			}
			printTable(out, rows)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// dnsRecordType is the record a domain's DNS needs, as Heroku says it: a
// CNAME for a subdomain; an apex domain (one dot: example.com) cannot
// have one, and takes an ALIAS or ANAME where the DNS provider has them.
func dnsRecordType(host string) string {
	if !strings.HasPrefix(host, "*.") && strings.Count(host, ".") == 1 {
		return "ALIAS or ANAME"
	}
	return "CNAME"
}

// shortFingerprint is the first 16 hex digits of a "sha256:<hex>"
// fingerprint, enough to tell certificates apart in a table.
func shortFingerprint(fp string) string {
	if len(fp) > len("sha256:")+16 {
		return fp[:len("sha256:")+16]
	}
	return fp
}

// printTable prints rows as the Heroku CLI's tables: the first row is
// the header, underlined with ─, columns two spaces apart.
func printTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, cell := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, cell := range cells {
			if i == len(cells)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(cell)
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	for i, r := range rows {
		line(r)
		if i == 0 {
			rules := make([]string, len(widths))
			for j, n := range widths {
				rules[j] = strings.Repeat("─", n)
			}
			line(rules)
		}
	}
}

func newDomainsAddCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "domains:add HOSTNAME",
		Short: "Add a custom domain (www.example.com, or *.example.com for every name under it)",
		Args:  exactArgs(1, "give the domain: dyno domains:add www.example.com -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			r, err := routerSettings(a)
			if err != nil {
				return err
			}
			host, err := a.AddDomain(args[0], r.Domain, userName())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Adding %s to %s... done\n", host, newColors(cmd).app(a.Name))
			if r.Listen == daemon.RouterOff {
				fmt.Fprintf(out, " ▸    The router is off ([router] listen = \"off\" in %s): nothing answers for %s until it is on.\n", a.Home().SizesFile(), host)
			} else {
				fmt.Fprintf(out, " ▸    Configure your DNS provider to point %s at this machine (DNS Target %s); the router listens on %s.\n",
					host, app.DefaultHost(a.Name, r.Domain), r.Listen)
			}
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newDomainsRemoveCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "domains:remove HOSTNAME",
		Short: "Remove a custom domain, and its certificate",
		Args:  exactArgs(1, "give the domain: dyno domains:remove www.example.com -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			host, err := a.RemoveDomain(args[0], userName())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing %s from %s... done\n", host, newColors(cmd).app(a.Name))
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newDomainsClearCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "domains:clear",
		Short: "Remove every custom domain, and their certificates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			if _, err := a.ClearDomains(userName()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing all domains from %s... done\n", newColors(cmd).app(a.Name))
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}
