package graph

// MicrosoftGraphAppID is the application ID of Microsoft Graph, the same in every tenant: the
// resource whose app roles the Permissions are.
const MicrosoftGraphAppID = "00000003-0000-0000-c000-000000000000"

// Permission is a Microsoft Graph application permission tapbot needs: an app role of the
// Microsoft Graph service principal, granted to tapbot's app registration with admin consent.
type Permission struct {
	// Name is the permission's value, as it appears in the access token's roles claim and in
	// the Entra admin center.
	Name string
	// ID is the app role's ID. Microsoft publishes these (Microsoft Graph permissions reference)
	// and they are the same in every tenant; deploy/entra/create-app.sh checks them against the
	// tenant's Microsoft Graph before it grants anything.
	ID string
	// Why is what tapbot does with it, in a few words, for doctor's lines.
	Why string
	// Broader lists more privileged permissions that also allow the same calls: a tenant that
	// granted one of them works, so doctor accepts it (and says it is more than needed) rather
	// than failing a working setup. Nobody is ever asked to grant them.
	Broader []string
}

// AuthMethodsPermission lets AuthMethods list a person's sign-in methods after their reveal;
// only needed while watching is on (TAP_WATCH_INTERVAL is not off).
const AuthMethodsPermission = "UserAuthenticationMethod.Read.All"

// AuditLogPermission lets the Client read Entra ID's audit log (PassEvents), so passes made
// outside tapbot are raised; only needed while the tenant watcher is on
// (TAP_TENANT_WATCH_INTERVAL is not off).
const AuditLogPermission = "AuditLog.Read.All"

// Permissions are the application permissions tapbot's calls need, least privileged for each,
// and nothing else. It is the one list: tapbot doctor checks a token against it,
// deploy/entra/create-app.sh and create-app.ps1 are generated from it (go generate
// ./deploy/entra), and README.md's table must name the same ones; tests keep all four in step.
var Permissions = []Permission{
	{Name: "User.Read.All", ID: "df021288-bdef-4463-88db-98f22de89214",
		Why:     "find the target and their manager",
		Broader: []string{"User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}},
	{Name: "UserAuthMethod-TAP.ReadWrite.All", ID: "627169a8-8c15-451c-861a-5b80e383de5c",
		Why:     "create, list and delete passes",
		Broader: []string{"UserAuthenticationMethod.ReadWrite.All"}},
	{Name: "Policy.Read.AuthenticationMethod", ID: "8e3bc81b-d2f3-4b7b-838c-32c88218d2f0",
		Why:     "read the Temporary Access Pass policy",
		Broader: []string{"Policy.ReadWrite.AuthenticationMethod"}},
	{Name: "RoleManagement.Read.Directory", ID: "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
		Why:     "tell whether a target holds an admin role",
		Broader: []string{"RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory", "Directory.Read.All", "Directory.ReadWrite.All"}},
	{Name: "GroupMember.Read.All", ID: "98830695-27a2-44f7-8c18-0c3ebc9698f6",
		Why:     "check membership of protected and role-assignable groups",
		Broader: []string{"Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}},
	{Name: AuthMethodsPermission, ID: "38d9df27-64da-44fd-b7c5-a6fbac20248f",
		Why:     "see when a person registers a passkey or Authenticator with their pass; not needed with TAP_WATCH_INTERVAL=off",
		Broader: []string{"UserAuthenticationMethod.ReadWrite.All"}},
	// Microsoft's permission table for List directoryAudits names Directory.Read.All beside
	// AuditLog.Read.All (and no higher privileged permission); doctor's read of one page is the
	// proof either way.
	{Name: AuditLogPermission, ID: "b0afded3-3588-46d8-8b3d-9842eff778da",
		Why:     "raise passes made outside tapbot; not needed with TAP_TENANT_WATCH_INTERVAL=off",
		Broader: []string{"Directory.Read.All"}},
}
