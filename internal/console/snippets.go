package console

import (
	"fmt"
	"strings"
)

// Snippet is ready-to-paste client configuration for one tool.
type Snippet struct {
	Tool string
	Code string
}

// endpointView is the part of an endpoint rule a client needs.
type endpointView struct {
	Host      string   `json:"host"`
	Protocols []string `json:"protocols"`
	Methods   []string `json:"methods"`
	Paths     []string `json:"paths"`
}

// CAFile is the name the console gives the downloaded proxy CA, and the snippets use.
const CAFile = "gatehouse-ca.pem"

// exampleURL is a URL a target's users may call: the first endpoint with a concrete host, its preferred scheme, and
// the fixed prefix of its first path glob. It is "" when every endpoint host is a wildcard.
func exampleURL(eps []endpointView) string {
	for _, e := range eps {
		if e.Host == "" || strings.Contains(e.Host, "*") {
			continue
		}
		scheme := "https"
		if len(e.Protocols) == 1 && e.Protocols[0] == "http" {
			scheme = "http"
		}
		p := "/"
		if len(e.Paths) > 0 {
			p = e.Paths[0]
			if i := strings.IndexAny(p, "*?[{"); i >= 0 {
				p = p[:i]
			}
			if !strings.HasPrefix(p, "/") {
				p = "/" + p
			}
		}
		return scheme + "://" + e.Host + p
	}
	return ""
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Snippets are the client settings for calling target URL u through the proxy at proxyAddr with secret. A secret of
// "" stands for the $GATEHOUSE_SECRET variable, so a page without the secret still shows working commands.
func Snippets(proxyAddr, u, secret, kubeconfigFile string) []Snippet {
	proxy := "http://" + proxyAddr
	if u == "" {
		u = "https://api.example.com/"
	}
	py, goSecret, js := `os.environ["GATEHOUSE_SECRET"]`, `os.Getenv("GATEHOUSE_SECRET")`, `process.env.GATEHOUSE_SECRET`
	header := `"Authorization: Bearer $GATEHOUSE_SECRET"`
	if secret != "" {
		py, goSecret, js = fmt.Sprintf("%q", secret), fmt.Sprintf("%q", secret), fmt.Sprintf("%q", secret)
		header = shellQuote("Authorization: Bearer " + secret)
	}
	out := []Snippet{
		{"curl", fmt.Sprintf("curl --proxy %s --cacert %s \\\n  -H %s \\\n  %s", proxy, CAFile, header, shellQuote(u))},
		{"Python requests", fmt.Sprintf(`import os, requests

proxies = {"http": %q, "https": %q}
r = requests.get(%q,
                 headers={"Authorization": "Bearer " + %s},
                 proxies=proxies, verify=%q)
print(r.status_code, r.text)`, proxy, proxy, u, py, CAFile)},
		{"Go", fmt.Sprintf(`package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
)

func main() {
	ca, err := os.ReadFile(%q)
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	proxy, _ := url.Parse(%q)
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxy),
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
	req, _ := http.NewRequest("GET", %q, nil)
	req.Header.Set("Authorization", "Bearer "+%s)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
}`, CAFile, proxy, u, goSecret)},
		{"Node", fmt.Sprintf(`# Node 24 or later: fetch honours the proxy variables with NODE_USE_ENV_PROXY=1.
export HTTPS_PROXY=%s HTTP_PROXY=%s NODE_USE_ENV_PROXY=1 NODE_EXTRA_CA_CERTS=%s
node -e 'fetch(%q, {headers: {Authorization: "Bearer " + %s}}).then(async r => console.log(r.status, await r.text()))'`,
			proxy, proxy, CAFile, u, strings.ReplaceAll(js, "'", `'\''`))},
	}
	if kubeconfigFile != "" {
		out = append(out, Snippet{"kubectl", fmt.Sprintf("# kubeconfig with the proxy, its CA and your credential\nKUBECONFIG=%s kubectl get pods", kubeconfigFile)})
	}
	return out
}
