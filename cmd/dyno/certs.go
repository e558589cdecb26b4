package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/spf13/cobra"
)

func addCertsCommands(root *cobra.Command) {
	addTopic(root, newCertsCommand, newCertsAddCommand, newCertsRemoveCommand)
}

// certTime is how certs writes an expiry, as the Heroku CLI does.
const certTime = "2006-01-02 15:04 MST"

func newCertsCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "List the app's SSL certificates, one per domain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			list, err := a.Certs()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				rows := make([]map[string]any, 0, len(list))
				for _, c := range list {
					rows = append(rows, map[string]any{"domain": c.Domain, "common_name": c.CommonName, "names": c.Names,
						"expires_at": c.NotAfter.UTC().Format(time.RFC3339), "fingerprint": c.Fingerprint})
				}
				return writeJSON(out, rows)
			}
			if len(list) == 0 {
				fmt.Fprintf(out, "%s has no SSL certificates.\n", newColors(cmd).app(a.Name))
				return nil
			}
			fmt.Fprintln(out, newColors(cmd).header(a.Name+" SSL Certificates"))
			rows := [][]string{{"Domain", "Common Name", "Expires", "Fingerprint"}}
			for _, c := range list {
				rows = append(rows, []string{c.Domain, c.CommonName, c.NotAfter.UTC().Format(certTime), c.Fingerprint})
			}
			printTable(out, rows)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newCertsAddCommand() *cobra.Command {
	var name, domain string
	cmd := &cobra.Command{
		Use:   "certs:add CRT KEY --domain DOMAIN",
		Short: "Serve DOMAIN over HTTPS with the certificate in CRT and its key in KEY (PEM files)",
		Args:  exactArgs(2, "give the certificate and key files: dyno certs:add server.crt server.key --domain www.example.com -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			r, err := routerSettings(a)
			if err != nil {
				return err
			}
			if domain == "" {
				return fmt.Errorf("say which domain the certificate is for: --domain %s, or one of dyno domains -a %s", app.DefaultHost(a.Name, r.Domain), a.Name)
			}
			crt, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read the certificate: %w", err)
			}
			key, err := os.ReadFile(args[1])
			if err != nil {
				return fmt.Errorf("read the key: %w", err)
			}
			info, err := a.AddCert(crt, key, domain, r.Domain, userName())
			if err != nil {
				return fmt.Errorf("%s, %s: %w", args[0], args[1], err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Adding SSL certificate for %s to %s... done\n", info.Domain, newColors(cmd).app(a.Name))
			printAligned(out, [][2]string{{"Common Name", info.CommonName}, {"Names", strings.Join(info.Names, ", ")},
				{"Expires", info.NotAfter.UTC().Format(certTime)}, {"Fingerprint", info.Fingerprint}})
			if r.TLSListen == "" {
				fmt.Fprintf(out, " ▸    HTTPS is off: set [router] tls_listen in %s (\":443\") for the router to serve it.\n", a.Home().SizesFile())
			}
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVar(&domain, "domain", "", "the domain the certificate serves: the app's default hostname or one of its custom domains")
	return cmd
}

func newCertsRemoveCommand() *cobra.Command {
	var name, domain string
	cmd := &cobra.Command{
		Use:   "certs:remove --domain DOMAIN",
		Short: "Stop serving DOMAIN over HTTPS, and remove its certificate and key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			if domain == "" {
				return fmt.Errorf("say which domain's certificate to remove: --domain DOMAIN (dyno certs -a %s lists them)", a.Name)
			}
			if _, err := a.RemoveCert(domain, userName()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing SSL certificate for %s from %s... done\n", strings.ToLower(domain), newColors(cmd).app(a.Name))
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVar(&domain, "domain", "", "the domain whose certificate to remove")
	return cmd
}
