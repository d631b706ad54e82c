"""An in-cluster API client in the standard library only, as client libraries do it
(rest.InClusterConfig): the address from KUBERNETES_SERVICE_HOST/PORT, the mounted
service-account token as a bearer token, the mounted ca.crt to verify the server.

    python3 client.py list           # prints the pods of the pod's namespace, one per line
    python3 client.py delete NAME    # tries to delete a pod; prints the HTTP code and message
"""
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def request(method, path):
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ["KUBERNETES_SERVICE_PORT"]
    with open(os.path.join(SA, "token")) as f:
        token = f.read()
    ctx = ssl.create_default_context(cafile=os.path.join(SA, "ca.crt"))
    req = urllib.request.Request(
        f"https://{host}:{port}{path}",
        method=method,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def main():
    with open(os.path.join(SA, "namespace")) as f:
        ns = f.read()
    action = sys.argv[1]
    if action == "list":
        code, body = request("GET", f"/api/v1/namespaces/{ns}/pods")
        if code != 200:
            print(f"list: {code} {body.get('message')}")
            sys.exit(1)
        for item in body["items"]:
            print(item["metadata"]["name"])
    elif action == "delete":
        code, body = request("DELETE", f"/api/v1/namespaces/{ns}/pods/{sys.argv[2]}")
        print(f"delete: {code} {body.get('reason')}: {body.get('message')}")


main()
