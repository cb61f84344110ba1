package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

var hostsResource = &resource{
	noun: "host", path: "/host-store/api/v1/hosts", nameField: "common_name",
	columns: []column{{"ID", "id"}, {"COMMON NAME", "common_name"}, {"ADDRESSES", "addresses"},
		{"SERVICES", "services.service"}, {"TAGS", "tags"}, {"SOURCE", "source"}},
}

type hostsCmd struct {
	List   listCmd       `cmd:"" help:"List hosts."`
	Get    getCmd        `cmd:"" help:"Show a host."`
	Create hostCreateCmd `cmd:"" help:"Add a host to the host store."`
	Update hostUpdateCmd `cmd:"" help:"Change a host; fields not given keep their value."`
	Delete deleteCmd     `cmd:"" help:"Delete a host."`
	Search hostSearchCmd `cmd:"" help:"Search hosts by keywords, tags and source."`
}

// ProvideResource hands the hosts resource to the generic subcommands.
func (*hostsCmd) ProvideResource() *resource { return hostsResource }

// hostFlags are the common fields of a host; the rarer ones (organization, instance_id, ...) go in -f FILE.
type hostFlags struct {
	bodyFlag
	CommonName *string  `name:"common-name" help:"Unique name of the host (compared without case)."`
	Comment    *string  `help:"Free text."`
	Address    []string `placeholder:"ADDR" help:"IP address or DNS name, without a port; repeat or separate with commas (replaces the addresses on update)."`
	Service    []string `placeholder:"SERVICE[:PORT][@ADDR]" help:"Service the host offers, e.g. ssh, https:8443 or db:5432@10.0.0.5; the port defaults to the service's usual one and the address to the host's first (replaces the services on update)."`
	Tag        []string `placeholder:"TAG" help:"Tag; repeat or separate with commas (replaces the tags on update)."`
	Source     *string  `help:"Where the host comes from (default local)."`
	ExternalID *string  `name:"external-id" help:"Id of the host in the system it came from."`
	Zone       *string  `help:"Zone or region of the host."`
	outputFlags
}

// fields turns the flags into request fields; only what was given is sent, so an update leaves the rest alone.
func (c *hostFlags) fields() (map[string]any, error) {
	m := map[string]any{}
	setPtr(m, "common_name", c.CommonName)
	setPtr(m, "comment", c.Comment)
	setPtr(m, "source", c.Source)
	setPtr(m, "external_id", c.ExternalID)
	setPtr(m, "zone", c.Zone)
	if c.Address != nil {
		m["addresses"] = nonEmpty(c.Address)
	}
	if c.Tag != nil {
		m["tags"] = nonEmpty(c.Tag)
	}
	if c.Service != nil {
		svcs := []map[string]any{}
		for _, s := range nonEmpty(c.Service) {
			svc, err := parseServiceFlag(s)
			if err != nil {
				return nil, err
			}
			svcs = append(svcs, svc)
		}
		m["services"] = svcs
	}
	return m, nil
}

// nonEmpty drops empty values, so that `--tag ""` asks for no tags at all.
func nonEmpty(in []string) []string {
	out := []string{}
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseServiceFlag reads SERVICE[:PORT][@ADDR]. The address comes last so that an IPv6 address needs no brackets.
func parseServiceFlag(s string) (map[string]any, error) {
	head, addr, _ := strings.Cut(s, "@")
	name, port, hasPort := strings.Cut(head, ":")
	if name == "" {
		return nil, fmt.Errorf("--service %q: want SERVICE[:PORT][@ADDR], e.g. ssh, https:8443 or db:5432@10.0.0.5", s)
	}
	svc := map[string]any{"service": name}
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("--service %q: port %q is not a number", s, port)
		}
		svc["port"] = n
	}
	if addr != "" {
		svc["address"] = addr
	}
	return svc, nil
}

type hostCreateCmd struct {
	hostFlags
}

// Help shows the shape of a host file, for the fields that have no flag.
func (*hostCreateCmd) Help() string {
	return `Simple hosts come from flags:

  gatehouse hosts create --common-name db-1.example.com --address 10.0.0.5,db-1.example.com \
      --service ssh --service db:5432 --tag prod

Others from a JSON or YAML file (-f), in the API's shape:

  common_name: db-1.example.com
  addresses: [10.0.0.5]
  services:
    - {service: SSH, port: 22}
    - {service: DB, address: 10.0.0.5, port: 5432}
  tags: [prod]
  organization: Example
  organizational_unit: Ops
  host_type: vm`
}

func (c *hostCreateCmd) Run(g *Globals) error {
	flags, err := c.fields()
	if err != nil {
		return err
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	_, err = create(g, hostsResource, c.outputFlags, body)
	return err
}

type hostUpdateCmd struct {
	ID string `arg:"" name:"host" help:"Id or common name."`
	hostFlags
}

func (c *hostUpdateCmd) Run(g *Globals) error {
	flags, err := c.fields()
	if err != nil {
		return err
	}
	if len(flags) == 0 && c.File == "" {
		return errors.New("nothing to change: give a flag or -f FILE")
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	return update(g, hostsResource, c.outputFlags, c.ID, body)
}

type hostSearchCmd struct {
	Keywords []string `arg:"" optional:"" help:"Words that must all appear in the names, comment, addresses, tags or services."`
	Tag      []string `placeholder:"TAG" help:"Only hosts with this tag; repeat for all of several."`
	Source   string   `help:"Only hosts from this source (local for hosts entered through the API)."`
	listFlags
	outputFlags
}

func (c *hostSearchCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	body := map[string]any{"keywords": strings.Join(c.Keywords, " ")}
	if c.Tag != nil {
		body["tags"] = nonEmpty(c.Tag)
	}
	if c.Source != "" {
		body["source"] = c.Source
	}
	items, err := searchAll(g.Ctx, api, hostsResource.path+"/search", c.listFlags, body)
	if err != nil {
		return err
	}
	return printList(g.Stdout, c.outputFlags, items, hostsResource.columns)
}

// searchAll posts a search and follows its pages, as listAll does for lists.
func searchAll(ctx context.Context, api *apiClient, path string, lf listFlags, body any) ([]json.RawMessage, error) {
	const page = 100
	var items []json.RawMessage
	for {
		q := lf.query()
		q.Set("offset", strconv.Itoa(len(items)))
		q.Set("limit", strconv.Itoa(page))
		b, err := api.do(ctx, request{method: http.MethodPost, path: path, query: q, body: body})
		if err != nil {
			return nil, err
		}
		var l struct {
			Count int               `json:"count"`
			Items []json.RawMessage `json:"items"`
		}
		if err := decodeInto(b, &l); err != nil {
			return nil, err
		}
		items = append(items, l.Items...)
		if len(l.Items) == 0 || len(items) >= l.Count {
			return items, nil
		}
	}
}
