"""The validated stack configuration: read once, checked whole, then trusted everywhere.

A stack is either the agency's `platform` (the redirector, its Elastic IP, the failover watcher)
or one client `site` (a DigitalOcean + Linode pair). Each key in the stack file's `twinhost:`
namespace maps to one field of `SiteConfig` or `PlatformConfig`, camelCase in the file. Pulumi's
project config has no object type, so structured keys (`digitalocean`, `linode`, `app`,
`failover`, `aws`, `watcher`) are objects in the stack file and are declared in `Pulumi.yaml`
without a type.

Every error names the key path, the bad value and what is allowed, and all errors are reported
together in one `ConfigError`: an operator fixes the file once, not once per run.

The modules, by role: `issues` (ConfigIssue, ConfigError), `fields` (one value at a time),
`site` and `platform` (the two models), `rules` (rules that relate fields, each a function
returning issues), `parse` (the two passes that run them all), `files` (stack files: unreadable
ones refused in one line, and the facts across files: served domains, the platform's file).

What this package deliberately does not do: read secrets. Secret keys (`appSecrets`,
`notifyWebhook`, `watcherDnsToken`) stay `pulumi.Output` secrets and are read by the stack code;
here only their presence (and, for `appSecrets`, the names) is checked, never shown.
"""

from infra.config.fields import (
    ADMIN_CIDR_FLOOR,
    ANYWHERE_OVERRIDE,
    DEFAULT_RESOLVERS,
    DEFAULT_TTL,
    MIN_RSA_BITS,
    PROVIDERS,
    RESERVED_ENV,
    RESERVED_USERS,
    SECRET_KEYS,
    TTL_MAX,
    TTL_MIN,
    CertificateSource,
    DebianRelease,
    FailoverMode,
    Provider,
)
from infra.config.issues import NAMESPACE, ConfigError, ConfigIssue, StackFileError
from infra.config.parse import flatten_stack_file_config, parse_config
from infra.config.platform import AwsRedirector, PlatformConfig, Watcher
from infra.config.site import (
    App,
    ClientDomain,
    CommandApp,
    ContainerApp,
    DebApp,
    DemoApp,
    DigitalOceanNode,
    Failover,
    LinodeNode,
    SiteConfig,
    WordPressApp,
)
from infra.constants import LETS_ENCRYPT_DIRECTORY

__all__ = [
    "ADMIN_CIDR_FLOOR",
    "ANYWHERE_OVERRIDE",
    "DEFAULT_RESOLVERS",
    "DEFAULT_TTL",
    "LETS_ENCRYPT_DIRECTORY",
    "MIN_RSA_BITS",
    "NAMESPACE",
    "PROVIDERS",
    "RESERVED_ENV",
    "RESERVED_USERS",
    "SECRET_KEYS",
    "TTL_MAX",
    "TTL_MIN",
    "App",
    "AwsRedirector",
    "CertificateSource",
    "ClientDomain",
    "CommandApp",
    "ConfigError",
    "ConfigIssue",
    "ContainerApp",
    "DebApp",
    "DebianRelease",
    "DemoApp",
    "DigitalOceanNode",
    "Failover",
    "FailoverMode",
    "LinodeNode",
    "PlatformConfig",
    "Provider",
    "SiteConfig",
    "StackFileError",
    "Watcher",
    "WordPressApp",
    "flatten_stack_file_config",
    "parse_config",
]
