// The requests every routing comparison sends: plain ones, each rule's match, and the near misses a prefix or a header
// match must not take.
import { fqdn, Request } from "../harness";

/** The requests the routing tests send, at the edge (`gateway` the edge Gateway) or in the mesh (`"mesh"`): every rule, and the near misses of each. */
export const requests = (gateway: string): Request[] => {
    const at = (service: string, path: string, headers: Record<string, string> = {}): Request => ({ gateway, host: gateway === "mesh" ? fqdn(service) : "localhost", path, headers });
    return [
        at("user-service", "/users"),
        at("user-service", "/users/42"),
        // Path prefixes match whole segments on both APIs.
        at("user-service", "/users/"),
        at("user-service", "/usersearch"),
        at("user-service", "/users-export"),
        at("user-service", "/users/beta"),
        at("user-service", "/users/beta/7"),
        at("user-service", "/users/betamax"),
        at("user-service", "/users", { "x-user-type": "beta" }),
        at("user-service", "/users", { "x-user-type": "alpha" }),
        at("user-service", "/users", { testuser: "kim" }),
        at("user-service", "/users", { cookie: "session=1; experiment=new-ui" }),
        at("user-service", "/users", { cookie: "experiment=old-ui" }),
        at("user-service", "/users", { "x-user-type": "beta", testuser: "kim", cookie: "experiment=new-ui" }),
        at("product-service", "/products"),
        at("product-service", "/products/7", { "x-preview": "green" }),
        at("product-service", "/products", { "x-preview": "blue" }),
        at("product-service", "/products", { "x-region": "kr" }),
        at("product-service", "/products", { "x-region": "kr", "x-preview": "blue" }),
        at("order-service", "/orders/1"),
        ...(gateway === "mesh" ? [] : [at("order-service", "/admin")]),
    ];
};
